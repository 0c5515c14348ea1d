"""AnimeGAN training and style-dataset building."""
