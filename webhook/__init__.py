"""kci-webhook: a mutating admission webhook for private and mirrored container registries."""

__version__ = "0.1.0"
