#!/bin/sh
# Stand-in for the vehicle application started at boot.
echo "app: started"
