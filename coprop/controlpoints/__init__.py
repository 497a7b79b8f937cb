"""Control points: frames where the sounding object changes (GT annotation, detectors, RCPG)."""
