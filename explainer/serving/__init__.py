"""The models served to many users on Ray Serve, and the narrow HTTP client that reaches them.

With ``LLM_EXPLAINER_BACKEND=http://host:port`` set, the library sends its heavy work (a trace's
forward pass, input attribution, head statistics of long texts, generation steps, and every
analysis marked ``@remotable``) to the cluster and builds the results here; unset, everything
stays in-process and neither Ray nor this package's HTTP code is imported.

- :mod:`.wire`: the wire format (JSON requests, safetensors results, never pickle)
- :mod:`.client`: HTTP with retries and the "busy — retrying in N s" notice
- :mod:`.remote`: the switch and the registry of remote analyses
- :mod:`.worker`: what a worker does with a request (no Ray)
- :mod:`.deployments`: one Ray Serve deployment per model (imports Ray; workers only)
- :mod:`.cluster`: ``python -m explainer cluster up|status|down``
"""


class ServingError(RuntimeError):
    """The cluster could not answer; the message says why and what to do."""


class Busy(ServingError):
    """The cluster stayed full for longer than a client waits."""


class Unreachable(ServingError):
    """The cluster did not answer, even after retries."""


class RemoteError(ServingError):
    """The cluster failed on this request in a way no retry mends."""


class NotServed(ServingError):
    """The cluster does not serve this model or analysis (or serves another revision of it)."""


TRAVELLING: dict[str, type[Exception]] = {}


def travels(cls: type[Exception]) -> type[Exception]:
    """Mark an error class of the library as one a cluster sends back as itself, with the fields its
    ``WIRE_FIELDS`` names (a page words a refusal by them)."""
    TRAVELLING[cls.__name__] = cls
    return cls
