"""Which indexing service the GUI runs: the real `clipdesk.service.IndexService`.

The GUI only uses the names in SERVICE_API.md; this module is the one place
that imports them, so the worker and panels never care where they come from.
"""

from __future__ import annotations

try:
    from ..service import FolderStatus, IndexService, ServiceEvent
except ImportError:  # pragma: no cover - only until issue 3's service is merged
    from .standin_service import FolderStatus, IndexService, ServiceEvent  # type: ignore[assignment]

__all__ = ["FolderStatus", "IndexService", "ServiceEvent"]
