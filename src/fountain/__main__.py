from fountain.cli import main

main()
