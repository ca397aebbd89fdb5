"""Formatting: files become training Documents in InCoder's metadata markup (notebooks included)."""
