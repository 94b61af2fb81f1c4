from mlops_platform.cli import main

main()
