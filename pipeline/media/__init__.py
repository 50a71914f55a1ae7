"""Media cells (`image`, `last_image`): fetch bounded bytes from a path or fsspec URL
(`source`), validate and decode them like `diffusers.utils.load_image` (`probe`), and fit
the decoded image to a render size (`fit`). No torch or diffusers import here."""
