"""Other products' APIs: each module answers one vendor's documented paths and shapes."""
