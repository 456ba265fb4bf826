"""The technician's serial link on the camera: the frame protocol (``protocol``) and the
device's listener (``listener``); the technician's client is ``tools.link_client``."""
