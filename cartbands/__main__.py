from cartbands.cli import main

main()
