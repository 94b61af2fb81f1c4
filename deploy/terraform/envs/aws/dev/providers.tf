provider "aws" {
  region = var.region
}

# Disaster-recovery region: receives the replica of the data bucket when replication is on.
provider "aws" {
  alias  = "replica"
  region = var.replica_region
}
