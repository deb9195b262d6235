from avatar_studio.cli.main import console_main

console_main()
