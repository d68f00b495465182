"""Command line: ``crop-weed-seg <subcommand>`` (synth, train, eval, export, info, predict)."""
