"""What every sandbox may use: the one limits type of the sandbox and of
`[campaign.sandbox]` in campaign.toml.

A pydantic dataclass: the config validates it with the same strictness as
its other sections (unknown keys, booleans, inf/nan refused), and the sandbox
gets a plain frozen dataclass (`dataclasses.replace` works). The sandbox
knows nothing of the config: the config imports this, never the reverse.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass

CONFIGURABLE = ("memory_mb", "cpus", "pids")
"""The fields campaign.toml may set; the others are the harness's own."""


@dataclass(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False))
class SandboxLimits:
    memory_mb: int = Field(2048, ge=128)
    """Memory limit of every sandbox (swap included)."""
    cpus: float = Field(1.0, ge=0.01)
    """CPU quota of every sandbox (Docker's least is 0.01; at most the engine's CPU count)."""
    pids: int = Field(256, ge=16)
    """Process limit of every sandbox."""
    # The harness's own: never in a campaign's stored config, never set from it.
    output_cap_bytes: int = Field(2_000_000, ge=1, exclude=True)
    """Bytes of an exec's output kept; the rest is drained and dropped."""
    host_grace_s: float = Field(15.0, ge=0, exclude=True)
    """How long past an exec's own timeout the host waits before killing the container."""

    @field_validator("memory_mb", "cpus", "pids", "output_cap_bytes", "host_grace_s", mode="before")
    @classmethod
    def _no_booleans(cls, value):
        # pydantic takes true for 1: `cpus = true` would ask for one CPU.
        if isinstance(value, bool):
            raise ValueError(f"expected a number, not {str(value).lower()}")
        return value
