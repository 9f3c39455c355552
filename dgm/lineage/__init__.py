"""Lineage of a campaign: networkx graph, exports, Rich tree, plots, agent details, replay, DGM import."""
