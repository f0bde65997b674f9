"""movie_rec: movie recommendations for users whose viewing history has gaps."""

__version__ = "0.1.0"
