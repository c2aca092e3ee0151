"""The command-line verbs, one module each, with the flags, exit codes and error wrapper they
share (arguments, exits)."""
