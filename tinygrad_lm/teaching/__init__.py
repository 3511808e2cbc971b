"""For the lessons: fill-in exercises and their checker, gradient flow through time, and the
lessons' helpers (data with fallbacks, figures)."""
