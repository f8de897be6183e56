"""Request and response schemas, layered Base → Create / Update / Public."""
