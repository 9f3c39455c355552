"""Campaigns on a Ray cluster: sandbox work on the nodes, one writer on the head.

`ray_executor` is the `Executor` that sends runs' sandbox work to Ray tasks,
`node` what those tasks do on a worker node, and `channel` the authenticated
way from a node's sandboxes to the head's gateway (docs/cluster.md).
"""
