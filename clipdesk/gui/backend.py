"""The one module that names the indexing service the GUI runs (`clipdesk.service`).

The GUI uses only the names in SERVICE_API.md, imported from here, so the
worker and the panels never depend on where the service lives.
"""

from __future__ import annotations

from ..service import FolderStatus, IndexService, ServiceEvent

__all__ = ["FolderStatus", "IndexService", "ServiceEvent"]
