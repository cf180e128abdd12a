"""Command-line commands beyond the core ones in :mod:`crmgraph.cli`: the edge
of the layers (they may use the app), kept out of the feature packages
(:mod:`crmgraph.transfer`, :mod:`crmgraph.privacy`) so those never import the
app or the command line."""
