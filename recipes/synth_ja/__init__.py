"""Synthetic Japanese speech corpus recipe (Open JTalk voices + augmentation); see README.md."""
