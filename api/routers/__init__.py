"""The API's routers, one module per area; api.app lists them (in the order routes are tried)."""
