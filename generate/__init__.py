"""lasium.generate: generative models, their fitting, and LASIUM task synthesis (the ``lasium-gen`` job)."""
