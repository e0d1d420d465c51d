from paycore.cli import main

main()
