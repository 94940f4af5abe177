"""OPC UA: the bridge that pushes dispatch setpoints, feederdao's own server, a feeder simulator."""
