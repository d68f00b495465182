"""From labels to nozzles, without ROS: ground geometry, weed targets, tracking, spray planning
and the drive simulator that scores them."""
