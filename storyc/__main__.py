from storyc.cli import main

main()
