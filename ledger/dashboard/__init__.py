"""`ratchet-dashboard`: a small read-only web app over a runs folder, refreshing by itself."""
