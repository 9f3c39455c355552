"""One rule the typed config models (campaign.toml, model roles) share.

pydantic takes `true` for 1: `heldout = true` would hold out one task,
`max_output_tokens = true` cap every reply at one token. A boolean where a
number belongs is refused instead.
"""

from __future__ import annotations

from pydantic import ValidationInfo


def refuse_boolean_for_number(model_cls, value, info: ValidationInfo):
    """A `mode="before"` field validator's body: the value, or ValueError for a bool given to a number."""
    annotation = str(model_cls.model_fields[info.field_name].annotation)
    if isinstance(value, bool) and ("int" in annotation or "float" in annotation):
        raise ValueError(f"expected a number, not {str(value).lower()}")
    return value
