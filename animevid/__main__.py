from animevid._cli import main

main(prog_name="animevid")
