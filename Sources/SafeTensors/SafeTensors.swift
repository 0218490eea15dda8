// SafeTensors: see README.
