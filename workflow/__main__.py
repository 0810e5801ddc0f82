from workflow.ops.cli import main

main(prog_name="certflow")
