"""The text encoder: char-CNN-RNN of Reed et al. 2016 trained with the DS-SJE loss, so captions
(including new sentences) can be embedded without the original Torch7 release."""
