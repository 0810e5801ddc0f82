from workflow.cli import main

main(prog_name="certflow")
