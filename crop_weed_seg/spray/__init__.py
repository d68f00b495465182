"""From labels to nozzles, without ROS: ground geometry, weed targets, tracking and spray
planning. The drive simulator that scores them is :mod:`crop_weed_seg.sim`."""
