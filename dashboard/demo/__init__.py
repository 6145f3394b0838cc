"""The embedded demo store: two versions of an iris classifier, a manifest and a sample CSV."""
