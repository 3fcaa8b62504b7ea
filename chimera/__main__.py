from chimera.cli import main

main()
