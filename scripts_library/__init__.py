"""Call-flow engine and the flow files it runs (plain Python: no console, no Textual)."""
