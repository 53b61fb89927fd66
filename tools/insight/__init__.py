"""See before you deploy: offline views of the resource graph the program registers.

    python -m tools.insight.preview --env prod [--format json]      the plan, grouped by component
    python -m tools.insight.diff --a staging --b prod                what differs between two environments (Markdown)
    python -m tools.insight.cost --env all                           monthly estimate at min and max autoscaling scale
    python -m tools.insight.diagram --env prod                       docs/architecture-prod.svg and .png

Every view reads ONE resource graph: :func:`tools.insight.graph.load` runs the real program (``tap.py``)
under Pulumi's mock runtime with the stack's configuration (:func:`tools.stack_config.offline_config`),
so a resource added in ``lib/`` shows up in all four without edits here.
"""
