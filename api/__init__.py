"""The HTTP layer: parses requests, calls :class:`rag.service.RagService`, returns schemas."""
