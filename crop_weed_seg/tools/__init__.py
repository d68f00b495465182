"""Command line: ``crop-weed-seg <subcommand>`` (``cli.py``, one ``<name>_cmd.py`` per
subcommand), and the developer tools."""
