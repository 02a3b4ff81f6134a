"""Pictures for people: sample sheets of generated images with their captions."""
