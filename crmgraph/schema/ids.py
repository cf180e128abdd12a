"""Relay global IDs: they live in :mod:`crmgraph.ids` (below every layer that
uses them); this name stays for the modules and plugins that import it here."""

from crmgraph.ids import MAX_PK, NODE_TYPES, InvalidId, decode_id, encode_id

__all__ = ["MAX_PK", "NODE_TYPES", "InvalidId", "decode_id", "encode_id"]
