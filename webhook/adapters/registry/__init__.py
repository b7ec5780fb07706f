"""Presence checks against registry mirrors, for `policy: if-present`, one concern a module:

- `manifest`: the question (`MANIFEST_ACCEPT`, `manifest_reference`) and the answer (`Presence`)
- `credentials`: pull credentials from a Docker config file
- `challenge`: which `WWW-Authenticate` challenge to answer, and the Basic header
- `describe`: a failure in the words a person searches for
- `client`: `RegistryClient`, the manifest HEAD over httpx (trust, credentials, tokens)
- `presence`: `PresenceChecker`, the cache, coalescing, bounds and cool-down in front of it
- `files`: the files a config names, and whether they can be used

Callers import each name from the module that defines it.
"""
