"""Pure data logic: no Dagster imports, testable on its own."""
