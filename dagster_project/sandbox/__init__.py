"""A local stand-in for eSputnik's token API, implementing its documented semantics.

Used by the demo and the tests: it checks Basic auth and the app uuid, validates bodies the way
eSputnik does, resolves contacts by contactId -> externalCustomerId -> phone -> email, creates a
contact when the highest-priority identifier is unknown, and stores tokens append-only (a token
sent twice is stored twice). ``GET /_sandbox/state`` shows what it holds.
"""

from dagster_project.sandbox.server import SandboxServer, SandboxState

__all__ = ["SandboxServer", "SandboxState"]
