from dgm.cli.app import main

main()
