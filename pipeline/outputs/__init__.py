"""After the frames: encode them to a clip (formats), a thumbnail, and QC scores."""
