"""FetalCNS core: headless analysis of fetal brain and spine ultrasound.

A review aid for qualified clinicians, for research use. Not a diagnosis.
"""

__version__ = "0.1.0"

INTENDED_USE = (
    "FetalCNS is a review aid for qualified clinicians, for research use only. "
    "Its output is a suggestion, not a diagnosis, and must be checked against the images."
)
